"""What users do after a search: compare agents, transfer a policy, train a found network longer, plot."""
