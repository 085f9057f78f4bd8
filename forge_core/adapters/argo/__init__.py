"""Argo Workflows: the Workflow a run gets (hera), the Argo Server client, the orchestrator."""
