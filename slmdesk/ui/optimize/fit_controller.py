"""Wires the "Make it fit" mode to `slmdesk.optimize.fit.run.make_it_fit`.

The run is one job on its own ``slmdesk-optimize-fit`` thread (it waits on a worker child for
minutes); its progress reports and each measured candidate come back as the job's progress
signal and are handled here on the GUI thread. Cancel sets the job's cancel event: the core kills
the child and removes its work folder, so no partial model is left.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtWidgets import QTableWidgetItem

from slmdesk.common.errors import SlmdeskError
from slmdesk.models.library import ModelEntry
from slmdesk.optimize.fit.front import Outcome, mark_front
from slmdesk.optimize.fit.search import DEFAULT_MAX_BUILDS
from slmdesk.optimize.fit.space import FIT_TYPES
from slmdesk.optimize.fit.target import FitTarget
from slmdesk.optimize.worker_process import OptimizeCancelled, Progress
from slmdesk.ui.format import human_size
from slmdesk.ui.optimize.fit_view import TARGET_KLD, TARGET_MEMORY, TARGET_SIZE, FitView
from slmdesk.ui.runtime.jobs import Deadline, Job, JobContext
from slmdesk.ui.runtime.tasks import TaskRunner

STAGE_WORDS: dict[str, str] = {
    "reference": "Making a full-precision reference copy of the original",
    "fit-reference": "Scoring the held-out text with the original",
    "fit-vocabulary": "Trimming vocabularies",
    "fit-preview": "Predicting the size of each candidate",
    "fit-importance": "Measuring the importance matrix on the calibration text",
    "fit-baseline": "Measuring the original, for comparison",
}


class FitController(QObject):
    """The "Make it fit" mode's behaviour."""

    chat_requested = Signal(str)  # library name of the winner
    finished = Signal(object)  # the FitResult, or the exception that ended the run

    def __init__(self, view: FitView, tasks: TaskRunner) -> None:
        super().__init__()
        self.view = view
        self.tasks = tasks
        self.job: Job | None = None
        self.outcomes: list[Outcome] = []
        self.result: Any = None
        self._entries: list[ModelEntry] = []
        # The search's axes; narrower in tests.
        self.types: Sequence[str] = FIT_TYPES
        self.with_imatrix = True
        self.max_builds = DEFAULT_MAX_BUILDS
        view.start_button.clicked.connect(self._on_start)
        view.cancel_button.clicked.connect(self.cancel)
        view.chat_button.clicked.connect(self._on_chat)

    # -- public -------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether a run is in progress."""
        return self.job is not None and self.job.running

    def set_models(self, entries: list[ModelEntry]) -> None:
        """Fill the model choice from the library listing."""
        current = self.view.model.currentText()
        self._entries = [e for e in entries if e.status == "ok"]
        self.view.model.blockSignals(True)
        self.view.model.clear()
        self.view.model.addItems([e.name for e in self._entries])
        index = self.view.model.findText(current)
        self.view.model.setCurrentIndex(max(0, index))
        self.view.model.blockSignals(False)
        self.view.start_button.setEnabled(bool(self._entries) and not self.running)

    def start(self) -> bool:
        """Start a run with the view's choices; False (with a message) when they are wrong."""
        if self.running:
            return False
        index = self.view.model.currentIndex()
        if not 0 <= index < len(self._entries):
            self._say("Choose a model first.")
            return False
        path = self._entries[index].path
        kind = self.view.target_kind()
        size_text = self.view.size_edit.text() if kind == TARGET_SIZE else None
        kld_text = self.view.kld_edit.text() if kind == TARGET_KLD else None
        types, with_imatrix, max_builds = list(self.types), self.with_imatrix, self.max_builds
        language_set = self.view.language_set()
        vocabularies = [None, language_set] if language_set else None

        def work(context: JobContext) -> Any:
            from slmdesk.models.gguf_info import read_gguf_info
            from slmdesk.optimize.fit.run import FitRequest, make_it_fit
            from slmdesk.optimize.fit.target import make_target

            info = read_gguf_info(path)
            target = make_target(info, size_text, kind == TARGET_MEMORY, kld_text)
            context.report(target, urgent=True)
            stage = ""

            def progress(p: Progress) -> None:
                nonlocal stage
                context.report(p, urgent=p.stage != stage)
                stage = p.stage

            request = FitRequest(
                Path(path),
                target,
                types=types,
                with_imatrix=with_imatrix,
                max_builds=max_builds,
                vocabularies=vocabularies,
            )
            return make_it_fit(
                request,
                progress,
                lambda o: context.report(o, urgent=True),
                context.cancelled,
            )

        self.outcomes = []
        self.result = None
        self._target: FitTarget | None = None
        self.view.chart.set_front([])
        self.view.table.setRowCount(0)
        self.view.reason.setText("")
        self.view.chat_button.setVisible(False)
        self.view.progress.setValue(0)
        self._say("Starting…")
        self.view.set_running(True)
        job = self.tasks.start(work, "optimize-fit", dedicated=True)
        job.progress.connect(self._on_progress)
        job.succeeded.connect(self._on_succeeded)
        job.failed.connect(self._on_failed)
        job.cancelled.connect(
            lambda: self._on_failed(OptimizeCancelled("Cancelled; nothing partial was kept."))
        )
        self.job = job
        return True

    @Slot()
    def cancel(self) -> None:
        """Stop the run: the child is killed and its work folder removed."""
        if self.running and self.job is not None:
            self.job.cancel()
            self.view.cancel_button.setEnabled(False)
            self._say("Cancelling…")

    def request_stop(self) -> None:
        """Shutdown: cancel and drop later reports."""
        if self.job is not None:
            self.job.close()

    def wait_stopped(self, timeout: float) -> bool:
        """Wait for the run's thread (its child killed, its files removed)."""
        deadline = Deadline(timeout)
        return self.job is None or self.job.wait(deadline.remaining())

    # -- handlers -------------------------------------------------------------------------------

    @Slot()
    def _on_start(self) -> None:
        self.start()

    @Slot(object)
    def _on_progress(self, value: object) -> None:
        if isinstance(value, FitTarget):
            self._target = value
        elif isinstance(value, Outcome):
            self.outcomes.append(value)
            mark_front(self.outcomes)
            self.view.chart.set_front(self.outcomes, None, self._target)
            self._fill_table(self.outcomes)
        elif isinstance(value, Progress):
            if value.stage == "fit-building":
                self._say(
                    f"Building and measuring {value.done} of at most {value.total}: {value.detail}"
                )
                self.view.progress.setValue(round((value.fraction or 0.0) * 1000))
            else:
                self._say(STAGE_WORDS.get(value.stage, value.stage) + "…")
                total = max(1, value.total)
                self.view.progress.setValue(round(min(1.0, value.done / total) * 1000))

    @Slot(object)
    def _on_succeeded(self, result: Any) -> None:
        self.result = result
        self.outcomes = list(result.outcomes)
        self.view.set_running(False)
        self.view.progress.setValue(1000)
        self.view.chart.set_front(self.outcomes, result.winner, result.target)
        self._fill_table(self.outcomes)
        self.view.reason.setText(f"Built {result.name}. {result.reason}")
        self.view.chat_button.setVisible(True)
        self._say(f"Done in {result.elapsed_seconds:.0f} s.")
        self.finished.emit(result)

    @Slot(object)
    def _on_failed(self, error: object) -> None:
        from slmdesk.common.errors import user_message

        self.view.set_running(False)
        found = getattr(error, "result", None)
        if found is not None:
            self.outcomes = list(found.outcomes)
            self.view.chart.set_front(self.outcomes, None, found.target)
            self._fill_table(self.outcomes)
        if isinstance(error, SlmdeskError):
            self._say(str(error))
        else:
            self._say(user_message(error if isinstance(error, BaseException) else Exception()))
        self.finished.emit(error)

    @Slot()
    def _on_chat(self) -> None:
        if self.result is not None and self.result.name:
            self.chat_requested.emit(self.result.name)

    # -- helpers --------------------------------------------------------------------------------

    def _say(self, text: str) -> None:
        self.view.status.setText(text)

    def _fill_table(self, outcomes: Sequence[Outcome]) -> None:
        shown = [o for o in outcomes if o.built or o.reason.startswith("failed")]
        shown.sort(key=lambda o: o.size_bytes or o.predicted_size_bytes or 0)
        table = self.view.table
        table.setRowCount(len(shown))
        for row, o in enumerate(shown):
            winner = (
                self.result is not None
                and self.result.winner is not None
                and (o.candidate == self.result.winner.candidate)
            )
            outcome = "winner" if winner else ("on the front" if o.on_front else o.reason)
            cells = (
                o.candidate.label(),
                human_size(o.size_bytes) if o.size_bytes else "—",
                f"{o.kld_mean:.4f}" if o.kld_mean is not None else "—",
                f"{o.top1_agreement * 100:.1f} %" if o.top1_agreement is not None else "—",
                outcome or "measured",
            )
            for column, text in enumerate(cells):
                table.setItem(row, column, QTableWidgetItem(text))
