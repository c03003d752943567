"""Every sentence and mention golive writes: messages, the card, refusals, the record, charts."""
