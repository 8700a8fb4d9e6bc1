"""The inbound pipeline: ordered stages that turn one accepted mail into case changes."""
