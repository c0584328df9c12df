"""Label-aware teacher prompts, as data.

As in the paper, the teacher sees the input *and* the gold label and explains the reasoning that leads to it
without restating the label; the explanation ends with a sentinel, so a truncated output is recognisable. Templates
are plain `str.format` strings with the fields `{description}`, `{input}`, `{answer}` and `{sentinel}`; pass your own
to `generate_rationales(prompt_template=...)` or register one per task here.
"""

SENTINEL = "[END]"

SYSTEM_PROMPT = "You are a careful teacher. You explain the reasoning behind answers clearly and briefly."

DEFAULT_TEMPLATE = (
    "Here is {description}.\n\n{input}\n\nThe correct answer is: {answer}.\n"
    "Explain in two or three sentences the reasoning that leads to this answer. Do not restate the answer itself. "
    "End your explanation with {sentinel}"
)

COPA_TEMPLATE = (
    'Here is {description}.\n\n{input}\n\nThe more plausible option is: "{answer}"\n'
    "Explain in one or two sentences why this is the more plausible one, using everyday knowledge of causes and "
    "effects. Do not mention option numbers. End your explanation with {sentinel}"
)

TASK_TEMPLATES: dict[str, str] = {
    "copa": COPA_TEMPLATE,
    "copa_sse": COPA_TEMPLATE,
    "rte": (
        "Here is {description}.\n\n{input}\n\nThe relation is: {answer}.\n"
        "Explain in two or three sentences what in the premise supports this relation to the hypothesis. Do not "
        "restate the relation's name. End your explanation with {sentinel}"
    ),
}


def template_for(task_name: str, override: str | None = None) -> str:
    """The prompt template: `override`, else the task's own, else the default."""
    template = override or TASK_TEMPLATES.get(task_name, DEFAULT_TEMPLATE)
    for field_name in ("{input}", "{answer}", "{sentinel}"):
        if field_name not in template:
            raise ValueError(f"A teacher prompt template must contain {field_name}; got {template!r}.")
    return template


def answer_text(task, row: dict) -> str:
    """How the gold answer is shown to the teacher: the chosen option's text for COPA (so the teacher explains the
    content, not "Option 2"), else the label name."""
    name = task.label_names[row["label"]]
    if name.startswith("Option ") and f"{name}: " in row["text"]:
        return row["text"].split(f"{name}: ", 1)[1].split("\n", 1)[0].strip()
    return name


def build_messages(template: str, task, row: dict, sentinel: str = SENTINEL) -> list[dict]:
    """Chat messages for one example (`row` has `text` and `label`)."""
    user = template.format(
        description=task.description or "an example",
        input=row["text"],
        answer=answer_text(task, row),
        sentinel=sentinel,
    )
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]
