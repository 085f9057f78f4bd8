from forge_core.testing.contracts import JobHandlerContract


class TestDeploymentHandler(JobHandlerContract):
    plugin_id = "forge_gitops"
    distribution = "catalyst-forge-gitops"
    names = ("deployment",)
    implemented = False
