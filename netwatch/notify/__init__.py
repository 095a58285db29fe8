"""Notification channels (email, webhook, WhatsApp, Segware alarm) behind one small interface."""
