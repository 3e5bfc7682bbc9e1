"""Staff invite people by email: one or many at once, pasted or from a CSV. Each invitation is a
single-use link whose token only the invitee's mailbox ever holds."""

import hashlib
import re
from urllib.parse import urlsplit

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.urls import reverse

from members import services
from members.models import Invitation, Member
from notifications.models import OutboundEmail

INVITE_URL = "members:invitations"


def links_in(body: str) -> list[str]:
    return re.findall(r"https?://[^\s\"'<>]+", body)


def accept_path_from(mail) -> str:
    accept_prefix = reverse("members:accept", args=["TOKEN"]).removesuffix("TOKEN/")
    paths = [urlsplit(link).path for link in links_in(mail.body)]
    matching = [path for path in paths if path.startswith(accept_prefix)]
    assert len(matching) == 1, f"expected one invitation link in {mail.body!r}"
    return matching[0]


def token_from(mail) -> str:
    return accept_path_from(mail).rstrip("/").rsplit("/", 1)[-1]


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


@pytest.fixture
def invite(staff, django_capture_on_commit_callbacks):
    """Invite through the service and deliver the emails, as the staff page does."""

    def run(*emails: str) -> services.InviteReport:
        with django_capture_on_commit_callbacks(execute=True):
            return services.invite_members(list(emails), invited_by=staff)

    return run


# --- Parsing ----------------------------------------------------------------------------------


def test_pasted_list_splits_on_commas_semicolons_spaces_and_new_lines():
    text = "a@example.com, b@example.com;c@example.com\nd@example.com\r\n\te@example.com  "
    assert services.parse_pasted_emails(text) == [
        "a@example.com",
        "b@example.com",
        "c@example.com",
        "d@example.com",
        "e@example.com",
    ]


def test_pasted_list_drops_angle_brackets_and_quotes_but_keeps_junk_for_the_report():
    assert services.parse_pasted_emails("<a@example.com>, 'b@example.com' nonsense") == [
        "a@example.com",
        "b@example.com",
        "nonsense",
    ]


def test_csv_reads_every_cell_with_an_at_sign_and_skips_names_and_headers():
    text = "name,email\nJane Doe,jane@example.com\nSam,sam@example.com,backup@example.com\n"
    assert services.parse_csv_emails(text) == [
        "jane@example.com",
        "sam@example.com",
        "backup@example.com",
    ]


# --- The service --------------------------------------------------------------------------


def test_inviting_one_person_creates_an_open_invitation_and_emails_them(
    invite, staff, mailoutbox, settings
):
    report = invite("jane@example.com")

    assert report.invited == ["jane@example.com"]
    invitation = Invitation.objects.get()
    assert invitation.email == "jane@example.com"
    assert invitation.invited_by == staff
    assert invitation.status == "open"
    assert (invitation.expires_at - invitation.created_at).days == settings.INVITATION_VALID_DAYS
    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == ["jane@example.com"]
    assert "invited" in mailoutbox[0].subject.lower()
    assert staff.full_name in mailoutbox[0].body
    assert OutboundEmail.objects.get().status == OutboundEmail.Status.SENT


def test_inviting_many_at_once_sends_one_email_each(invite, mailoutbox):
    emails = [f"guest{n}@example.com" for n in range(25)]

    report = invite(*emails)

    assert sorted(report.invited) == sorted(emails)
    assert Invitation.objects.count() == 25
    assert sorted(mail.to[0] for mail in mailoutbox) == sorted(emails)
    # Every invitee gets a link of their own.
    assert len({token_from(mail) for mail in mailoutbox}) == 25


def test_addresses_are_normalised_to_lower_case(invite):
    report = invite("  Jane.Doe@Example.COM ")
    assert report.invited == ["jane.doe@example.com"]
    assert Invitation.objects.get().email == "jane.doe@example.com"


@pytest.mark.parametrize(
    "bad",
    [
        "not-an-email",
        "jane@",
        "@example.com",
        "jane@@example.com",
        "jane@example",
        "a" * 250 + "@x.io",
    ],
)
def test_invalid_addresses_are_reported_and_not_invited(invite, mailoutbox, bad):
    report = invite(bad, "good@example.com")

    assert report.invited == ["good@example.com"]
    assert report.invalid == [bad[:100]]
    assert list(Invitation.objects.values_list("email", flat=True)) == ["good@example.com"]
    assert [mail.to for mail in mailoutbox] == [["good@example.com"]]


def test_existing_members_are_reported_and_not_invited(invite, make_member, mailoutbox):
    make_member(email="alice@example.com")

    report = invite("ALICE@example.com", "bob@example.com")

    assert report.already_members == ["alice@example.com"]
    assert report.invited == ["bob@example.com"]
    assert not Invitation.objects.filter(email__iexact="alice@example.com").exists()
    assert [mail.to for mail in mailoutbox] == [["bob@example.com"]]


def test_duplicates_in_one_batch_are_invited_once(invite, mailoutbox):
    report = invite("jane@example.com", "JANE@example.com", "jane@example.com ")

    assert report.invited == ["jane@example.com"]
    assert report.duplicates == ["jane@example.com", "jane@example.com"]
    assert Invitation.objects.count() == 1
    assert len(mailoutbox) == 1


def test_more_than_the_limit_is_refused_and_nothing_is_sent(invite, mailoutbox):
    emails = [f"guest{n}@example.com" for n in range(services.MAX_INVITES_AT_ONCE + 1)]

    with pytest.raises(services.InvitationError) as caught:
        invite(*emails)

    assert caught.value.reason == "too_many"
    assert str(services.MAX_INVITES_AT_ONCE) in caught.value.message
    assert Invitation.objects.count() == 0
    assert OutboundEmail.objects.count() == 0
    assert mailoutbox == []


def test_exactly_the_limit_is_allowed(staff):
    emails = [f"guest{n}@example.com" for n in range(services.MAX_INVITES_AT_ONCE)]
    report = services.invite_members(emails, invited_by=staff)
    assert len(report.invited) == services.MAX_INVITES_AT_ONCE


def test_reinviting_revokes_the_older_link(invite, client, mailoutbox):
    invite("jane@example.com")
    old_token = token_from(mailoutbox[0])
    invite("Jane@Example.com")
    new_token = token_from(mailoutbox[1])

    assert old_token != new_token
    old, new = Invitation.objects.order_by("created_at", "id")
    assert old.status == "revoked"
    assert new.status == "open"

    response = client.get(reverse("members:accept", args=[old_token]))
    assert response.status_code == 410
    assert "replaced by a newer one" in response.text
    assert client.get(reverse("members:accept", args=[new_token])).status_code == 200


def test_reinviting_after_expiry_gives_a_fresh_working_link(invite, client, mailoutbox):
    invite("jane@example.com")
    Invitation.objects.update(created_at="2000-01-01T00:00Z", expires_at="2000-01-15T00:00Z")

    invite("jane@example.com")

    assert client.get(accept_path_from(mailoutbox[1])).status_code == 200


def test_only_a_sha256_of_the_token_is_stored_on_the_invitation(invite, mailoutbox):
    invite("jane@example.com")
    token = token_from(mailoutbox[0])

    invitation = Invitation.objects.get()
    assert invitation.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in invitation.token_hash
    # Guessable tokens would make the hash pointless.
    assert len(token) >= 32


def test_no_table_holds_a_working_invitation_link_once_the_email_is_sent(invite, mailoutbox):
    """A leaked database must not leak working invitation links (see Invitation's docstring),
    and that includes the log of sent emails."""
    invite("jane@example.com")
    token = token_from(mailoutbox[0])

    leaks = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608
            for row in cursor.fetchall():
                if any(isinstance(value, str) and token in value for value in row):
                    leaks.append(table)
    assert leaks == []


def test_the_invitation_email_carries_a_working_link(invite, client, mailoutbox, settings):
    invite("jane@example.com")
    mail = mailoutbox[0]

    link = next(link for link in links_in(mail.body) if "/invite/" in link)
    assert link.startswith(settings.SITE_URL + "/")
    html = mail.alternatives[0].content
    assert link in html

    response = client.get(urlsplit(link).path)
    assert response.status_code == 200
    assert "jane@example.com" in response.text
    assert "Create my account" in response.text


# --- The staff page -----------------------------------------------------------------------


def test_staff_page_shows_the_form_and_recent_invitations(staff_client, invite):
    invite("jane@example.com")

    response = staff_client.get(reverse(INVITE_URL))

    assert response.status_code == 200
    assert "Invite members" in response.text
    assert "jane@example.com" in response.text
    assert '<td data-testid="invitation-state">Sent</td>' in response.text


def test_staff_page_invites_a_pasted_list(
    staff_client, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(
            reverse(INVITE_URL),
            {"emails": "a@example.com, b@example.com;c@example.com\nd@example.com"},
        )

    assert response.status_code == 200
    report = response.context["report"]
    assert report.invited == ["a@example.com", "b@example.com", "c@example.com", "d@example.com"]
    assert "Invited 4 people." in response.text
    assert Invitation.objects.count() == 4
    assert len(mailoutbox) == 4


def test_inviting_one_person_says_person_not_people(
    staff_client, mailoutbox, django_capture_on_commit_callbacks
):
    """Issue 8 §6: staff read "Invited 1 people"."""
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(reverse(INVITE_URL), {"emails": "solo@example.com"})

    assert "Invited 1 person." in response.text
    assert "1 people" not in response.text
    assert Invitation.objects.get().email == "solo@example.com"


def test_staff_page_invites_from_a_csv_file(
    staff_client, mailoutbox, django_capture_on_commit_callbacks
):
    upload = SimpleUploadedFile(
        "members.csv",
        "\ufeffName,Email\nJane Doe,jane@example.com\nSam Smith,sam@example.com\n".encode(),
        content_type="text/csv",
    )

    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(reverse(INVITE_URL), {"csv_file": upload})

    assert response.status_code == 200
    assert response.context["report"].invited == ["jane@example.com", "sam@example.com"]
    assert sorted(mail.to[0] for mail in mailoutbox) == ["jane@example.com", "sam@example.com"]


def test_staff_page_combines_pasted_and_csv_addresses(staff_client):
    upload = SimpleUploadedFile("more.csv", b"sam@example.com\n", content_type="text/csv")

    response = staff_client.post(
        reverse(INVITE_URL), {"emails": "jane@example.com", "csv_file": upload}
    )

    assert response.context["report"].invited == ["jane@example.com", "sam@example.com"]


def test_staff_page_reports_invalid_existing_and_duplicate_addresses(staff_client, member):
    response = staff_client.post(
        reverse(INVITE_URL),
        {"emails": "new@example.com, nope, alice@example.com, new@example.com"},
    )

    report_html = response.text
    assert "Not valid email addresses: nope" in report_html
    assert "Already members, not invited: alice@example.com" in report_html
    assert "Listed twice (invited once): new@example.com" in report_html
    assert list(Invitation.objects.values_list("email", flat=True)) == ["new@example.com"]


def test_staff_page_escapes_what_it_echoes_back(staff_client):
    response = staff_client.post(reverse(INVITE_URL), {"emails": "x<scr'ipt>alert(1)</script>"})

    assert "Not valid email addresses" in response.text
    assert "<script>alert(1)" not in response.text
    assert Invitation.objects.count() == 0


def test_staff_page_refuses_more_than_the_limit(staff_client, mailoutbox):
    emails = ", ".join(f"g{n}@example.com" for n in range(services.MAX_INVITES_AT_ONCE + 1))

    response = staff_client.post(reverse(INVITE_URL), {"emails": emails})

    assert response.status_code == 200
    assert f"at most {services.MAX_INVITES_AT_ONCE} people" in response.text
    assert Invitation.objects.count() == 0
    assert mailoutbox == []


def test_staff_page_needs_some_addresses(staff_client):
    response = staff_client.post(reverse(INVITE_URL), {"emails": "   "})

    assert "Paste some addresses or choose a CSV file." in response.text
    assert Invitation.objects.count() == 0


def test_staff_page_refuses_a_csv_that_is_not_utf8(staff_client):
    upload = SimpleUploadedFile("latin1.csv", "zoë@example.com\n".encode("latin-1"))

    response = staff_client.post(reverse(INVITE_URL), {"csv_file": upload})

    assert "saved as UTF-8" in response.text
    assert Invitation.objects.count() == 0


def test_staff_page_refuses_an_oversized_csv(staff_client):
    from members.forms import MAX_CSV_BYTES

    upload = SimpleUploadedFile("big.csv", b"x" * (MAX_CSV_BYTES + 1))

    response = staff_client.post(reverse(INVITE_URL), {"csv_file": upload})

    assert "too big" in response.text
    assert Invitation.objects.count() == 0


def test_invitations_are_recorded_against_the_staff_member_who_sent_them(staff_client, staff):
    staff_client.post(reverse(INVITE_URL), {"emails": "jane@example.com"})
    assert Invitation.objects.get().invited_by == staff
    assert not Member.objects.filter(email="jane@example.com").exists()
