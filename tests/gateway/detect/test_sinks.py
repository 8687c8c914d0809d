import pytest

from gateway.detect.sinks import profile_of, tokens
from gateway.events import ToolSpec


@pytest.mark.parametrize(
    ("name", "category"),
    [
        ("send_email", "message"), ("sendEmail", "message"), ("users.invite", "access"), ("send_money", "payment"),
        ("wire_transfer", "payment"), ("schedule_transaction", "payment"), ("reserve_hotel", "payment"),
        ("update_password", "credentials"), ("share_file", "share"), ("delete_file", "delete"),
        ("cancel_calendar_event", "delete"), ("post_webpage", "publish"), ("create_post", "publish"),
        ("run_shell_command", "execute"), ("add_user_to_channel", "access"), ("append_to_file", "write"),
    ],
)
def test_sinks_by_name(name: str, category: str) -> None:
    profile = profile_of(name, None)
    assert category in profile.categories and profile.is_sink


@pytest.mark.parametrize("name", ["get_sent_emails", "search_emails", "read_channel_messages", "get_webpage",
                                  "list_files", "get_post"])
def test_reads_are_not_sinks_whatever_object_they_read(name: str) -> None:
    profile = profile_of(name, None)
    assert not profile.is_sink and profile.reads


def test_delete_email_deletes_it_does_not_send_it() -> None:
    assert profile_of("delete_email", None).categories == {"delete"}


def test_send_money_is_a_payment_not_a_message() -> None:
    assert profile_of("send_money", None).categories == {"payment"}


def test_opaque_names_are_judged_by_their_description() -> None:
    spec = ToolSpec(name="do_action", description="Sends money to the given IBAN.")
    assert "payment" in profile_of("do_action", spec).categories
    assert not profile_of("do_action", None).is_sink


def test_parameters_make_a_sink_of_an_opaque_tool() -> None:
    assert "payment" in profile_of("tool_7", None, {"iban", "amount"}).categories
    assert "message" in profile_of("tool_7", None, {"recipients", "body"}).categories
    assert "credentials" in profile_of("tool_7", None, {"new_password"}).categories


def test_an_invitation_needs_participants_in_the_call() -> None:
    spec = ToolSpec(name="create_calendar_event", input_schema={"properties": {"title": {}, "participants": {}}})
    assert profile_of("create_calendar_event", spec, {"title"}).categories == {"write"}
    assert "message" in profile_of("create_calendar_event", spec, {"title", "participants"}).categories
    assert "message" in profile_of("create_calendar_event", spec).categories  # no call: what it could do


def test_a_search_filtered_by_recipient_sends_nothing() -> None:
    assert not profile_of("search_emails", None, {"to", "query"}).is_sink


@pytest.mark.parametrize("name", ["get_user_information", "get_iban", "get_balance", "read_ssh_keys"])
def test_sensitive_reads(name: str) -> None:
    assert profile_of(name, None).sensitive_read


def test_weights_rank_money_above_calendars() -> None:
    assert profile_of("send_money", None).weight > profile_of("send_email", None).weight > \
        profile_of("create_file", None).weight


def test_tokens() -> None:
    assert tokens("sendMoney_v2-now") == ["send", "money", "v", "2", "now"]
    assert tokens("HTTPRequest") == ["http", "request"]
