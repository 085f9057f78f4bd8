from forge_core.testing.contracts import PublisherContract


class TestGithubPublisher(PublisherContract):
    plugin_id = "forge_github"
    distribution = "catalyst-forge-github"
    names = ("github",)
    implemented = False
