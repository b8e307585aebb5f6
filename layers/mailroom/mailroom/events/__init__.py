"""Domain events: recorded in the organization's event stream; the webhooks issue delivers them."""
