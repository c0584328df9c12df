"""Label-aware teacher prompts, as data.

As in the paper, the teacher sees the input *and* the gold label and explains the reasoning that leads to it
without restating the label; the explanation ends with a sentinel, so a truncated output is recognisable. Templates
are plain `str.format` strings with the fields `{description}`, `{input}`, `{answer}` and `{sentinel}`; pass your own
to `generate_rationales(prompt_template=...)` or register one per task here.
"""

from .. import targets

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

CHOICE_TEMPLATE = (
    'Here is {description}.\n\n{input}\n\nThe right option is: "{answer}"\n'
    "Explain in two or three sentences why this option is right and the others are not. Do not mention option "
    "numbers. End your explanation with {sentinel}"
)

MULTI_LABEL_TEMPLATE = (
    "Here is {description}.\n\n{input}\n\nThe labels that apply are: {answer}.\n"
    "Explain in two or three sentences what in the text makes these labels apply and the others not. Do not list "
    "the labels themselves. End your explanation with {sentinel}"
)

REGRESSION_TEMPLATE = (
    "Here is {description}.\n\n{input}\n\nThe score is: {answer}.\n"
    "Explain in two or three sentences what in the text leads to this score. Do not restate the number. End your "
    "explanation with {sentinel}"
)

PROBLEM_TYPE_TEMPLATES = {"multi_label_classification": MULTI_LABEL_TEMPLATE, "regression": REGRESSION_TEMPLATE}

TASK_TEMPLATES: dict[str, str] = {
    "copa": COPA_TEMPLATE,
    "copa_sse": COPA_TEMPLATE,
    "multiple_choice": CHOICE_TEMPLATE,  # own data with --options_column (`LabelledData.choice_task`)
    "rte": (
        "Here is {description}.\n\n{input}\n\nThe relation is: {answer}.\n"
        "Explain in two or three sentences what in the premise supports this relation to the hypothesis. Do not "
        "restate the relation's name. End your explanation with {sentinel}"
    ),
}


def template_for(task_name: str, override: str | None = None, problem_type: str | None = None) -> str:
    """The prompt template: `override`, else the task's own, else the problem type's (multi-label: "the labels that
    apply are"; regression: "the score is"), else the default."""
    fallback = PROBLEM_TYPE_TEMPLATES.get(problem_type or "", DEFAULT_TEMPLATE)
    template = override or TASK_TEMPLATES.get(task_name, fallback)
    for field_name in ("{input}", "{answer}", "{sentinel}"):
        if field_name not in template:
            raise ValueError(f"A teacher prompt template must contain {field_name}; got {template!r}.")
    return template


def answer_text(task, row: dict) -> str:
    """How the gold answer is shown to the teacher: the gold option's text where the row lists its options (an
    `options` column: multiple choice, or a preset whose labels are option names such as COPA), so the teacher
    explains the content, not "Option 2"; else the verbalised label (`trainer.targets.answer_text`: the name, the
    names of a multi-label set, or the number). The options are data: never read back out of the rendered input."""
    options = row.get("options")
    if options and task.problem_type == targets.SINGLE_LABEL:
        return str(options[int(row["label"])]).strip()
    return targets.answer_text(row["label"], task.problem_type, task.id2label)


def build_messages(template: str, task, row: dict, sentinel: str = SENTINEL) -> list[dict]:
    """Chat messages for one example (`row` has `text` and `label`)."""
    user = template.format(
        description=task.description or "an example",
        input=row["text"],
        answer=answer_text(task, row),
        sentinel=sentinel,
    )
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]
