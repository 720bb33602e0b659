"""The WeChat official account: residents report through a conversation (inbound webhook:
`crypto`, `messages`, `conversation`, `service`) and are told of their cases' progress
(outbound: `api`, `media`, `push`)."""
