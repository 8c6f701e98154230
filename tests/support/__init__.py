"""What the tests share: real servers (PostgreSQL, Redis, S3, the sandbox Asterisk),
the seeded sales floor and its browser, the pinned clock, AMI scenarios."""
