"""Agentless collection: the agent's probes run against a server over SSH (paramiko)."""
