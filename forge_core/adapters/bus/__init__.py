"""The job bus on NATS JetStream (nats-py): names, provisioning, dispatching, dead letters."""
