"""Bulk IMAP migrations, the pure part (trekmail-migrations-api.txt's "Bulk Migration API"). No I/O
here: what needs the store (is this a mailbox of the organization? is it busy?) or the IMAP presets
comes in as a function. One module per job:

* ``request``: the request's vocabulary (providers, columns, limits' names) and its errors;
* ``servers``: the IMAP server of the request or of a row, checked (no private hosts unless allowed);
* ``data``: the CSV ``data``, one row per line;
* ``rows``: each row's category, and what the output may show of it (masked, never a password);
* ``estimates``: the organization's batch limits, time and storage estimates;
* ``preview``: everything the preview answers (and start starts), batch names;
* ``batches``: the batch's status, the actions it allows, pausing, and which jobs to start next.
"""
