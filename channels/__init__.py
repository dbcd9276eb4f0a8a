"""Platform adapters: verify signatures, parse payloads into `channels.events`, send replies.

No database access and no business rules live here.
"""
