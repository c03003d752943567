"""golive: a Slack bot that runs a production go-live runbook with the people who own it."""
