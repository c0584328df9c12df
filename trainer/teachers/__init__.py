"""Teacher rationales: label-aware prompts, local and server backends, resumable exactly-once generation."""

from .backends import Completion, LocalTeacher, ServerTeacher, render_prompt
from .bill import TeacherBill, teacher_bill
from .generate import (
    GenerationSummary,
    clean_rationale,
    finished_records,
    generate_in_windows,
    generate_rationales,
    job_manifest,
    load_results,
    summary_line,
)
from .prompts import DEFAULT_TEMPLATE, SENTINEL, TASK_TEMPLATES, answer_text, build_messages, template_for

__all__ = [
    "DEFAULT_TEMPLATE",
    "SENTINEL",
    "TASK_TEMPLATES",
    "Completion",
    "answer_text",
    "GenerationSummary",
    "LocalTeacher",
    "ServerTeacher",
    "TeacherBill",
    "build_messages",
    "clean_rationale",
    "finished_records",
    "generate_in_windows",
    "generate_rationales",
    "job_manifest",
    "load_results",
    "render_prompt",
    "summary_line",
    "teacher_bill",
    "template_for",
]
