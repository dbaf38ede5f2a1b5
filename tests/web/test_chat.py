"""Chat in the browser: the router answers with an image, a diagram (its PlantUML in a code block) or streamed
text; conversations are kept per user, renamed, deleted and reopened after a reload; hostile text stays text.
The server runs tiny random models: what is checked is what a person sees, not what the text says."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import Locator, Page, expect

from tests.web.conftest import Studio

HOSTILE_MESSAGE = "<img src=x onerror=alert(1)><script>alert(2)</script> thanks! how are you doing today?"
HOSTILE_TITLE = "<img src=x onerror=alert(3)> fox & friends"
HOSTILE_PLANTUML = "@startuml\nAlice -> Bob: <script>alert(4)</script> <img src=x onerror=alert(5)>\n@enduml"


def send(page: Page, text: str) -> Locator:
    """Sends `text` and waits for the answer to finish; the answer's message."""
    before = page.locator(".message-assistant").count()
    page.get_by_label("Message", exact=True).fill(text)
    page.get_by_role("button", name="Send").click()
    expect(page.locator(".message-user").filter(has_text=text).last).to_be_visible()
    answer = page.locator(".message-assistant").nth(before)
    expect(answer).to_be_visible(timeout=90_000)  # first the bubble: "Answering…" is also hidden before it exists
    expect(answer.get_by_text("Answering…")).to_be_hidden(timeout=90_000)
    return answer


def expect_loaded(image: Locator) -> None:
    expect(image).to_be_visible()
    image.page.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=image.element_handle())


def test_a_person_chats_for_an_image_a_diagram_and_text_and_keeps_the_conversation(
    studio_for: Callable[[str | None], Studio],
) -> None:
    studio = studio_for("alice")
    page = studio.open("/chat")
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    expect(page.get_by_role("heading", name="New conversation")).to_be_visible()

    # An image, inline, with the prompt as its alt text; the route is shown discreetly.
    image_answer = send(page, "draw a red fox")
    expect_loaded(image_answer.get_by_role("img", name="draw a red fox"))
    expect(image_answer.get_by_text("Answered as an image")).to_be_visible()
    expect(page.get_by_role("button", name="draw a red fox")).to_be_visible()  # the new conversation, listed

    # A diagram: its PlantUML in a collapsible code block. Tiny random models write no valid PlantUML, so the
    # person fixes the source and draws it (with text that must stay text), which is kept as a new answer.
    diagram_answer = send(page, "a sequence diagram of a login")
    expect(diagram_answer.get_by_text("Answered as a diagram")).to_be_visible()
    diagram_answer.get_by_text("PlantUML source").click()
    expect(diagram_answer.locator("pre code")).to_be_visible()
    if diagram_answer.get_by_label("PlantUML to draw").count():
        diagram_answer.get_by_label("PlantUML to draw").fill(HOSTILE_PLANTUML)
        diagram_answer.get_by_role("button", name="Draw it").click()
        drawn = page.locator(".message-assistant").last
        expect_loaded(drawn.get_by_role("img", name="Diagram: a sequence diagram of a login"))
        drawn.get_by_text("PlantUML source").click()
        expect(drawn.locator("pre code")).to_have_text(HOSTILE_PLANTUML)
        expect(drawn.get_by_role("button", name="Download SVG")).to_be_visible()
    else:  # the random model happened to write valid PlantUML: it was drawn right away
        expect_loaded(diagram_answer.get_by_role("img", name="Diagram: a sequence diagram of a login"))

    # Streamed text from a named text model, for a message full of markup that must show as typed.
    page.get_by_label("Model").select_option("tiny-llm")
    text_answer = send(page, HOSTILE_MESSAGE)
    expect(page.locator(".message-user .message-text").filter(has_text=HOSTILE_MESSAGE)).to_have_text(HOSTILE_MESSAGE)
    expect(text_answer.locator(".message-text")).not_to_be_empty()
    expect(text_answer.get_by_role("img")).to_have_count(0)

    # Rename, with a title that must stay text too.
    page.get_by_role("button", name="Rename").click()
    page.get_by_label("Conversation title").fill(HOSTILE_TITLE)
    page.get_by_role("button", name="Save title").click()
    expect(page.get_by_role("heading", name=HOSTILE_TITLE)).to_be_visible()
    expect(page.get_by_role("button", name=HOSTILE_TITLE)).to_be_visible()

    # A reload reopens it from the server, with its image and drawn diagram.
    page.reload()
    expect(page.get_by_role("heading", name=HOSTILE_TITLE)).to_be_visible()
    expect(page.locator(".message-user")).to_have_count(3)
    expect_loaded(page.get_by_role("img", name="draw a red fox"))
    expect_loaded(page.get_by_role("img", name="Diagram: a sequence diagram of a login").last)
    expect(page.locator(".message-user .message-text").last).to_have_text(HOSTILE_MESSAGE)
    studio.check_page("chat")

    # Bob sees none of it.
    bob = studio_for("bob").open("/chat")
    expect(bob.get_by_text("No conversations yet")).to_be_visible()
    expect(bob.locator(".conversation-link")).to_have_count(0)

    # Delete: gone from the list, and after a reload too.
    page.get_by_role("button", name="Delete", exact=True).click()
    page.get_by_role("button", name="Delete for good").click()
    expect(page.get_by_role("button", name=HOSTILE_TITLE)).to_have_count(0)
    expect(page.get_by_role("heading", name="New conversation")).to_be_visible()
    page.reload()
    expect(page.get_by_text("No conversations yet")).to_be_visible()
    assert page.locator("img[src='x']").count() == 0 and page.locator(".messages script").count() == 0
    assert dialogs == []
