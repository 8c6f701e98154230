"""Recording jobs: which calls' audio is finalized, failed or due, and retention policies.

- ``models``: CallAudio, RetentionPolicy
- ``jobs``: the finalize queue and its retries
"""
