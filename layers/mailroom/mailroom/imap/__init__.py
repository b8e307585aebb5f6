"""Reading mail from another IMAP server: the source side of IMAP migrations.

``source`` is the client (a session over aioimaplib: folders, UIDs, fetching messages in bounded
chunks), ``presets`` the well-known providers' server settings, ``folders`` how source folders map
onto Mailroom's folders, ``utf7`` the modified UTF-7 that IMAP mailbox names are written in.
"""
