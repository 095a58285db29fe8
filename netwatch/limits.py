"""Widths of the stored text values: the one source for the table columns and the input checks.

Config, inventory and API input are checked against these when read, so a value that would not fit
its column is refused with a clear message instead of failing (or being cut short on a non-strict
MySQL server) when a run stores it.
"""

ACCOUNT = 64
CUC = 64
CODE = 32
PARTITION = 32
ZONE = 32
HOST_NAME = 190
# An address is an IPv4 or IPv6 address or a DNS name (at most 253 characters); the column has room for it.
ADDRESS = 253
ADDRESS_COLUMN = 255
# Account name, company and client group from Segware, cut to this width when stored.
LABEL = 190
# The client organisation an HTTP or TCP check belongs to (config), as wide as those labels.
CLIENT = LABEL
# What an outbox row is about: a host name, or an alert group "account/cuc/code".
SUBJECT = max(HOST_NAME, ACCOUNT + CUC + CODE + 2)
# A resolved IPv4 or IPv6 address as text (at most 45 characters).
RESOLVED_ADDRESS = 64
# A stored error or failure reason (check results, outbox rows), cut to this width.
ERROR_TEXT = 255
# The shortest database or SMTP password accepted. Every secret is masked in logs and stored errors,
# so a short one would mask ordinary text ("e" every "e"). Passwords are often set by a DBA's or mail
# provider's policy, where 8 is the common floor (NIST SP 800-63B's minimum too): the token minimum
# of 16 would refuse working passwords, while no word or number of 8 characters turns up in a log line
# by chance often enough to hide what a line says.
PASSWORD_MIN_CHARS = 8
