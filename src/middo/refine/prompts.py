"""Teacher prompts of the refine operations, and the tag contract the simulated teacher parses.

Contract (the simulated teacher in `middo.demo` relies on it; change both together):

- The system message's first line is exactly `Operation: <op>` with <op> one of `simplify`, `improve`,
  `synthesize` (these write a new prompt) or `respond` (this writes the response to a new prompt).
- The sample being worked on is in the user message between `SAMPLE_OPEN` and `SAMPLE_CLOSE`: its prompt text and,
  for simplify and improve, its original response between `RESPONSE_OPEN` and `RESPONSE_CLOSE` inside the sample.
- A synthesize request carries one hint per neighbour, each between `HINT_OPEN` and `HINT_CLOSE`, after the sample.
- A respond request carries the new prompt between `PROMPT_OPEN` and `PROMPT_CLOSE`.
- A sample that an earlier round already worked on carries, after the sample (and hints), one note per earlier
  attempt of the same operation between `EARLIER_OPEN` and `EARLIER_CLOSE`: what became of it and why, so the
  teacher writes something else (and the request differs, so the request cache does not return the same reply).
- Every request asks for the final content between `FINAL_OPEN` and `FINAL_CLOSE` (see `middo.refine.parse`).

A prompt of several turns is shown as `role: content` lines; the child is one user turn (after the parent's
system message, if any) and one assistant turn.
"""

from __future__ import annotations

from middo.data.schema import prompt_messages, response_text

OPERATION_PREFIX = "Operation: "
SAMPLE_OPEN, SAMPLE_CLOSE = "<sample>", "</sample>"
RESPONSE_OPEN, RESPONSE_CLOSE = "<response>", "</response>"
HINT_OPEN, HINT_CLOSE = "<hint>", "</hint>"
PROMPT_OPEN, PROMPT_CLOSE = "<prompt>", "</prompt>"
EARLIER_OPEN, EARLIER_CLOSE = "<earlier>", "</earlier>"
FINAL_OPEN, FINAL_CLOSE = "<final>", "</final>"
PROMPT_OPS = ("simplify", "improve", "synthesize")
RESPOND = "respond"

_FINAL_RULE = f"Write nothing after it. Put the {{what}} and nothing else between {FINAL_OPEN} and {FINAL_CLOSE}."
INSTRUCTIONS = {
    "simplify": (
        "You prepare training data for a small language model that cannot yet handle the task shown between "
        f"{SAMPLE_OPEN} and {SAMPLE_CLOSE}. Write one new task that trains the same skill one level easier: fewer "
        "steps, smaller quantities, plainer words or a narrower scope. It must stand on its own and have one clear "
        "correct answer. Do not solve it."
    ),
    "improve": (
        f"You prepare training data for a small language model. The task between {SAMPLE_OPEN} and {SAMPLE_CLOSE} "
        "(with its original answer) was judged poor: it may be unclear, wrong, or missing information. Write one "
        "task with the same intent that is clear, correct and complete, so it can be answered without guessing. "
        "Do not solve it."
    ),
    "synthesize": (
        f"You prepare training data for a small language model. The task between {SAMPLE_OPEN} and {SAMPLE_CLOSE} "
        f"lies in a thinly covered area; its nearest tasks in the data are listed between {HINT_OPEN} and "
        f"{HINT_CLOSE}. Write one new task from the same area that is not a rewording of any of them: change the "
        "situation, the question asked or a constraint. It must stand on its own. Do not solve it."
    ),
    RESPOND: (
        f"Answer the task between {PROMPT_OPEN} and {PROMPT_CLOSE} as a careful expert would: correct, complete, and "
        "no longer than it needs to be."
    ),
}
WHAT = {"simplify": "new task", "improve": "improved task", "synthesize": "new task", RESPOND: "answer"}


def system_message(op: str) -> dict:
    """The system turn of an operation: `Operation: <op>`, the instruction, the marker rule."""
    text = f"{OPERATION_PREFIX}{op}\n{INSTRUCTIONS[op]}\n{_FINAL_RULE.format(what=WHAT[op])}"
    return {"role": "system", "content": text}


def prompt_text(messages: list[dict]) -> str:
    """The prompt of a sample as text: the user turn alone, or `role: content` lines for several turns."""
    turns = [m for m in prompt_messages(messages) if m["role"] != "system"]
    if len(turns) == 1:
        return turns[0]["content"]
    return "\n".join(f"{m['role']}: {m['content']}" for m in turns)


def rewrite_messages(op: str, messages: list[dict], earlier: tuple[str, ...] = ()) -> list[dict]:
    """A simplify or improve request: the sample's prompt and its original response, then notes on earlier
    attempts (`middo.refine.history.earlier_notes`)."""
    body = f"{SAMPLE_OPEN}\n{prompt_text(messages)}\n{RESPONSE_OPEN}\n{response_text(messages)}\n{RESPONSE_CLOSE}\n"
    return [system_message(op), {"role": "user", "content": "\n".join([body + SAMPLE_CLOSE, *earlier_parts(earlier)])}]


def synthesize_messages(messages: list[dict], hints: list[str], variant: int, variants: int,
                        earlier: tuple[str, ...] = ()) -> list[dict]:
    """A synthesize request: the sparse sample's prompt, one hint per neighbour, which variant this is, and notes
    on earlier attempts."""
    parts = [f"{SAMPLE_OPEN}\n{prompt_text(messages)}\n{SAMPLE_CLOSE}"]
    parts += [f"{HINT_OPEN}\n{hint}\n{HINT_CLOSE}" for hint in hints]
    if variants > 1:  # distinct requests, so the request cache does not return one task n times
        parts.append(f"Write variant {variant + 1} of {variants}: make it differ from the other variants.")
    parts += earlier_parts(earlier)
    return [system_message("synthesize"), {"role": "user", "content": "\n".join(parts)}]


def earlier_parts(earlier: tuple[str, ...]) -> list[str]:
    """One tagged note per earlier attempt, then the request to write something different."""
    if not earlier:
        return []
    notes = [f"{EARLIER_OPEN}\n{note}\n{EARLIER_CLOSE}" for note in earlier]
    return [*notes, "Those earlier attempts are not to be repeated: write a different task."]


def respond_messages(new_prompt: str) -> list[dict]:
    """A respond request: the new prompt to answer."""
    return [system_message(RESPOND), {"role": "user", "content": f"{PROMPT_OPEN}\n{new_prompt}\n{PROMPT_CLOSE}"}]


def cut(text: str, limit: int) -> str:
    """`text` shortened to `limit` characters, marked with `...` when cut."""
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."
