"""Label-aware teacher prompts, as data.

As in the paper, the teacher sees the input *and* the gold label and explains the reasoning that leads to it
without restating the label; the explanation ends with a sentinel, so a truncated output is recognisable. Templates
are plain `str.format` strings with the fields `{description}`, `{input}`, `{answer}` and `{sentinel}`; pass your own
to `generate_rationales(prompt_template=...)` or register one per task here.
"""

from ..kinds.registry import get_kind

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


def template_for(task_name: str, override: str | None = None, problem_kind: str | None = None) -> str:
    """The prompt template: `override`, else the task's own, else its problem kind's (`problem_kind`: multi-label's
    "the labels that apply are", regression's "the score is", multiple choice's "the right option is"), else the
    default."""
    kind_template = get_kind(problem_kind).teacher_template if problem_kind else None
    template = override or TASK_TEMPLATES.get(task_name) or kind_template or DEFAULT_TEMPLATE
    for field_name in ("{input}", "{answer}", "{sentinel}"):
        if field_name not in template:
            raise ValueError(f"A teacher prompt template must contain {field_name}; got {template!r}.")
    return template


def answer_text(task, row: dict) -> str:
    """How the gold answer is shown to the teacher: the gold option's text where the row lists its options (an
    `options` column: multiple choice, or a preset whose labels are option names such as COPA), so the teacher
    explains the content, not "Option 2"; else the kind's verbalised label (`answer_text`: the name, the names of a
    multi-label set, or the number). The options are data: never read back out of the rendered input."""
    options = row.get("options")
    if options and (task.kind.one_label_per_row or task.kind.scores_options):
        return str(options[int(row["label"])]).strip()
    return task.kind.answer_text(row["label"], task.id2label)


def build_messages(template: str, task, row: dict, sentinel: str = SENTINEL) -> list[dict]:
    """Chat messages for one example (`row` has `text` and `label`)."""
    user = template.format(
        description=task.description or "an example",
        input=row["text"],
        answer=answer_text(task, row),
        sentinel=sentinel,
    )
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]
