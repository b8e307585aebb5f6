"""Which source folders a migration takes and where they land: special uses (attributes first, then
well-known names), the strategies, the user's selection, and custom folder paths."""

import pytest

from mailroom.imap import special_use
from mailroom.imap.folders import FLAG_MAP, select_folders, target_folder, target_path
from mailroom.imap.models import SourceFolder
from mailroom.mail.folders import InvalidFolder


def folder(
    name: str,
    *,
    use: str | None = None,
    delimiter: str | None = "/",
    selectable: bool = True,
    messages: int = 1,
) -> SourceFolder:
    return SourceFolder(
        name=name,
        raw_name=name,
        delimiter=delimiter,
        attributes=frozenset() if selectable else frozenset({"\\Noselect"}),
        special_use=use,
        messages=messages,
        uidvalidity=1 if selectable else None,
        selectable=selectable,
    )


MAILBOX = [
    folder("INBOX", use="inbox"),
    folder("[Gmail]", selectable=False, messages=0),
    folder("[Gmail]/Sent Mail", use="sent"),
    folder("[Gmail]/Drafts", use="drafts"),
    folder("[Gmail]/Trash", use="trash"),
    folder("[Gmail]/Spam", use="spam"),
    folder("Archive", use="archive"),
    folder("Work"),
    folder("Work/Projects"),
    folder("Entwürfe"),
]


# -- special uses ---------------------------------------------------------------------------------


def test_attributes_decide_first_and_names_only_for_uses_nobody_claims() -> None:
    listing = [
        ("INBOX", "/", frozenset()),
        ("Gesendet", "/", frozenset({"\\Sent"})),
        ("Sent Items", "/", frozenset()),  # \Sent is claimed: this is someone's own folder
        ("Papierkorb", "/", frozenset({"\\Trash"})),
        ("Junk E-mail", "/", frozenset()),  # nobody claims \Junk: the name decides
        ("Bulk Mail", "/", frozenset()),
        ("Work/Sent", "/", frozenset()),  # below a custom folder: not the Sent folder
        ("Alles", "/", frozenset({"\\All"})),  # Gmail's All Mail is not an archive folder
    ]
    assert special_use.assign(listing) == ["inbox", "sent", None, "trash", "spam", "spam", None, None]


@pytest.mark.parametrize(
    ("name", "delimiter", "use"),
    [
        ("inbox", "/", "inbox"),
        ("Sent Messages", "/", "sent"),
        ("Deleted Items", "/", "trash"),
        ("Deleted Messages", "/", "trash"),
        ("Junk", "/", "spam"),
        ("Spam", "/", "spam"),
        ("Drafts", "/", "drafts"),
        ("Archive", "/", "archive"),
        ("[Gmail]/Sent Mail", "/", "sent"),
        ("[Google Mail]/Trash", "/", "trash"),
        ("INBOX.Sent", ".", "sent"),  # Courier-style: everything lives under INBOX
        ("INBOX.Projects", ".", None),
        ("Projects/Sent", "/", None),
        ("Sent.Old", "/", None),
    ],
)
def test_well_known_names(name: str, delimiter: str, use: str | None) -> None:
    assert special_use.from_name(name, delimiter) == use


def test_attributes_are_case_insensitive() -> None:
    assert special_use.from_attributes(["\\HasNoChildren", "\\junk"]) == "spam"
    assert special_use.from_attributes(["\\HasChildren"]) is None


# -- where folders land ---------------------------------------------------------------------------


def test_special_folders_land_in_system_folders_and_others_in_custom_ones() -> None:
    assert [target_folder(f) for f in MAILBOX] == [
        "inbox",
        None,
        "sent",
        "drafts",
        "trash",
        "spam",
        "archive",
        None,
        None,
        None,
    ]


@pytest.mark.parametrize(
    ("name", "delimiter", "path"),
    [
        ("Work/Projects", "/", "Work/Projects"),
        ("Work.Projects.2024", ".", "Work/Projects/2024"),
        ("Entwürfe", "/", "Entwürfe"),
        ("a/b", ".", "a-b"),  # a slash inside one level must not become a level of its own
        ("Clients..Acme.", ".", "Clients/Acme"),  # empty levels would make '//'
        ("  Spaced  /  Out ", "/", "Spaced/Out"),
        ("Tab\there", "/", "Tab here"),
        ("Flat", None, "Flat"),
    ],
)
def test_custom_folder_paths_use_slashes_and_stay_valid(name: str, delimiter: str | None, path: str) -> None:
    assert target_path(folder(name, delimiter=delimiter)) == path


def test_a_name_mailroom_cannot_hold_is_refused() -> None:
    with pytest.raises(InvalidFolder):
        target_path(folder("x" * 300))


# -- which folders ---------------------------------------------------------------------------------


def names(folders: list[SourceFolder]) -> list[str]:
    return [f.name for f in folders]


def test_strategies() -> None:
    assert names(select_folders(MAILBOX, "all", None)) == [f.name for f in MAILBOX if f.selectable]
    assert names(select_folders(MAILBOX, "standard", None)) == [
        "INBOX",
        "[Gmail]/Sent Mail",
        "[Gmail]/Drafts",
        "[Gmail]/Trash",
        "[Gmail]/Spam",
        "Archive",
    ]
    assert names(select_folders(MAILBOX, "inbox_only", None)) == ["INBOX"]


def test_a_selection_narrows_the_strategy_down() -> None:
    assert names(select_folders(MAILBOX, "all", ["Entwürfe", "inbox"])) == ["INBOX", "Entwürfe"]
    assert names(select_folders(MAILBOX, "standard", ["Work", "[Gmail]/Sent Mail"])) == ["[Gmail]/Sent Mail"]
    assert select_folders(MAILBOX, "all", []) == []


def test_an_unknown_selected_folder_is_named() -> None:
    with pytest.raises(ValueError, match="'Wrok' is not a folder on the source server"):
        select_folders(MAILBOX, "all", ["INBOX", "Wrok"])
    with pytest.raises(ValueError, match="'\\[Gmail\\]' cannot be imported"):
        select_folders(MAILBOX, "all", ["[Gmail]"])
    with pytest.raises(ValueError, match="strategy must be one of"):
        select_folders(MAILBOX, "everything", None)


def test_seen_and_flagged_are_the_flags_kept() -> None:
    assert FLAG_MAP == {"\\Seen": "seen", "\\Flagged": "flagged"}
