"""Recovery cases, playbooks and prompts arrive with the recovery-engine issue."""
