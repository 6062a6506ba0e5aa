"""The resident's verdict (回访): call-back outcomes and single-use links (issue 12)."""

from engine.callbacks.participant import CallbackLink, Callbacks
from engine.callbacks.service import answer_link, hash_token, issue_link, link_ticket

__all__ = ["CallbackLink", "Callbacks", "answer_link", "hash_token", "issue_link",
           "link_ticket"]
