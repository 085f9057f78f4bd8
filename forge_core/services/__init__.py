"""Services: the use cases (pipeline, release, deployment), built on the domain and the ports."""
