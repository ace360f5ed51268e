"""Reviewer edits: ops as plain data, the resolver that turns them into changes, the journal and the session that writes them."""
