"""Request and response models of contacts and contact groups (``/api/v1/messages/contacts``,
``/api/v1/messages/contact-groups``). The services check every field again (``domain.contacts``):
these state the rules for clients."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from mailroom.api.models import Strict, Timestamp
from mailroom.domain import contacts as rules
from mailroom.domain.contacts import Contact, Email, Phone, PostalAddress

Text = Field(default=None, max_length=rules.MAX_TEXT)


class EmailEntry(Strict):
    address: str = Field(max_length=320, description="An email address; unique among the mailbox's contacts")
    label: str | None = Field(default=None, max_length=rules.MAX_TEXT, description="e.g. work, home")


class PhoneEntry(Strict):
    number: str = Field(min_length=1, max_length=64)
    label: str | None = Field(default=None, max_length=rules.MAX_TEXT, description="e.g. mobile, work")


class PostalEntry(Strict):
    label: str | None = Text
    street: str | None = Text
    city: str | None = Text
    region: str | None = Text
    postal_code: str | None = Text
    country: str | None = Text


class ContactFields(Strict):
    name: str | None = Field(default=None, max_length=rules.MAX_TEXT, description="The full name as shown")
    given_name: str | None = Text
    family_name: str | None = Text
    nickname: str | None = Text
    emails: list[EmailEntry] | None = Field(
        default=None, max_length=rules.MAX_EMAILS, description="The first is the one a group send uses"
    )
    phones: list[PhoneEntry] | None = Field(default=None, max_length=rules.MAX_PHONES)
    organization: str | None = Text
    title: str | None = Text
    notes: str | None = Field(default=None, max_length=rules.MAX_NOTES)
    birthday: str | None = Field(
        default=None,
        pattern=r"^(\d{4}|-)-\d{2}-\d{2}$",
        description="YYYY-MM-DD, or --MM-DD without the year",
        examples=["1985-04-12", "--04-12"],
    )
    addresses: list[PostalEntry] | None = Field(default=None, max_length=rules.MAX_POSTAL)
    photo_url: str | None = Field(default=None, max_length=rules.MAX_URL, description="An http(s) URL")


class ContactBody(ContactFields):
    """A new contact: at least a name, an email address or a phone number."""

    def contact(self) -> Contact:
        return Contact(
            name=self.name,
            given_name=self.given_name,
            family_name=self.family_name,
            nickname=self.nickname,
            emails=tuple(Email(e.address, e.label) for e in self.emails or []),
            phones=tuple(Phone(p.number, p.label) for p in self.phones or []),
            organization=self.organization,
            title=self.title,
            notes=self.notes,
            birthday=self.birthday,
            addresses=tuple(PostalAddress(**a.model_dump()) for a in self.addresses or []),
            photo_url=self.photo_url,
        )


class ContactPatch(ContactFields):
    """Only the fields given change; a list replaces the whole list; null clears a field."""

    def changes(self) -> dict[str, Any]:
        given = self.model_dump(exclude_unset=True)
        for name in ("emails", "phones", "addresses"):
            if name in given and given[name] is None:
                given[name] = []
        return given


class EmailView(BaseModel):
    address: str
    label: str | None


class PhoneView(BaseModel):
    number: str
    label: str | None


class PostalView(BaseModel):
    label: str | None
    street: str | None
    city: str | None
    region: str | None
    postal_code: str | None
    country: str | None


class ContactView(BaseModel):
    id: str = Field(description="ct_...")
    name: str | None
    given_name: str | None
    family_name: str | None
    nickname: str | None
    emails: list[EmailView]
    phones: list[PhoneView]
    organization: str | None
    title: str | None
    notes: str | None
    birthday: str | None
    addresses: list[PostalView]
    photo_url: str | None
    groups: list[str] = Field(description="Ids of the contact groups it belongs to")
    created_at: Timestamp
    updated_at: Timestamp


class ImportBody(Strict):
    format: Literal["vcard", "csv"] = Field(
        description="vcard: vCard 3.0 or 4.0, one or many cards; csv: a Google Contacts or Outlook "
        "export, or a plain header (name, email, phone, organization, title, notes, birthday)"
    )
    content: str = Field(
        min_length=1,
        max_length=5_000_000,
        description="The file's text (UTF-8); at most 10,000 cards or rows",
    )


class ImportResult(BaseModel):
    position: int = Field(description="The card's number in the file, or the CSV data row's (from 1)")
    status: Literal["imported", "merged", "skipped"]
    contact_id: str | None = None
    reason: str | None = Field(default=None, description="Why it was skipped, or what of it was left out")


class ImportReport(BaseModel):
    imported: int
    merged: int
    skipped: int
    results: list[ImportResult]


class GroupBody(Strict):
    name: str = Field(min_length=1, max_length=100)
    description: str | None = Field(default=None, max_length=1000)


class GroupPatch(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    description: str | None = Field(default=None, max_length=1000)

    def changes(self) -> dict[str, Any]:
        given = self.model_dump(exclude_unset=True)
        if "name" in given and given["name"] is None:
            given.pop("name")
        return given


class MembersBody(Strict):
    contact_ids: list[str] = Field(
        min_length=1, max_length=50, description="Contact ids (ct_...), at most 50"
    )


class GroupView(BaseModel):
    id: str = Field(description="cg_...; send to the group with group:<id> in to, cc or bcc")
    name: str
    description: str | None
    member_ids: list[str]
    member_count: int
    created_at: Timestamp
    updated_at: Timestamp
