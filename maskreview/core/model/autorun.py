"""The automatic run: the model chosen for a dataset (remembered in it), filling only what is missing.

The choice lives in ``dataset.info["maskreview_model"]`` (model, weights, engine settings and
the field its output goes to), so every machine that opens the dataset runs the same model.
:func:`fill_missing` predicts only the samples that have no output of that model in its own
field, and never writes another model's field.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from maskreview.core.errors import BadInputError
from maskreview.core import fields
from maskreview.core.fields import RUN_KEY
from maskreview.core.model.engine import Engine, EngineSettings
from maskreview.core.model.runs import InferenceReport, run_inference
from maskreview.core.progress import Progress
from maskreview.core.store import dataset_of
from maskreview.core.store.dataset_doc import changed_since_loaded
from maskreview.core.model.provenance import check_field_for, propose_field, provenance

MODEL_INFO_KEY = "maskreview_model"


@dataclass
class ModelChoice:
    model: str = "demo"
    weights: str | None = None
    settings: EngineSettings = field(default_factory=EngineSettings)
    field: str | None = None  # None: the field propose_field picks on the first run

    def to_dict(self) -> dict:
        return {"model": self.model, "weights": self.weights, "settings": asdict(self.settings), "field": self.field}

    @classmethod
    def from_dict(cls, data: dict) -> ModelChoice:
        known = EngineSettings.__dataclass_fields__
        settings = EngineSettings(**{k: v for k, v in (data.get("settings") or {}).items() if k in known})
        return cls(str(data.get("model") or "demo"), data.get("weights"), settings, data.get("field"))

    def engine(self, progress: Progress | None = None) -> Engine:
        """The loaded model (everything checked before any field is touched)."""
        return Engine(self.model, weights=self.weights, settings=self.settings, progress=progress)


def chosen_model(dataset) -> ModelChoice | None:
    """The model the user chose for this dataset, or None (the app's default then applies)."""
    data = (dataset.info or {}).get(MODEL_INFO_KEY)
    return ModelChoice.from_dict(data) if isinstance(data, dict) and data.get("model") else None


def remember_model(dataset, choice: ModelChoice) -> None:
    """Remember ``choice`` as this dataset's model (``dataset.info``, saved). The same choice
    stored already (the window's rerun) costs one projected read, not a reload and a save."""
    wanted = choice.to_dict()
    if (dataset.info or {}).get(MODEL_INFO_KEY) == wanted and not changed_since_loaded(dataset):
        return
    dataset.reload()
    if (dataset.info or {}).get(MODEL_INFO_KEY) == wanted:
        return
    dataset.info[MODEL_INFO_KEY] = wanted
    dataset.save()


def missing_sample_ids(view, field_name: str, run_key: str | None = None) -> list[str]:
    """Samples of ``view`` with no output of the field's model (``run_key``: default the one in
    the field's record); cheap: reads ids and run keys only, no model."""
    if run_key is None:
        run_key = (provenance(dataset_of(view), field_name) or {}).get(RUN_KEY)
    run_field = fields.run_field(field_name)
    if run_key is None or run_field not in dataset_of(view).get_field_schema():
        return list(view.values("id"))
    ids, keys = view.values(["id", run_field])
    return [i for i, k in zip(ids, keys) if k != run_key]


def fill_missing(view, engine: Engine, field_name: str | None = None, progress: Progress | None = None,
                 **run_kwargs) -> tuple[str, InferenceReport]:
    """Predict the samples of ``view`` that have no output of ``engine`` in its own field.

    ``field_name``: default :func:`~maskreview.core.model.provenance.propose_field`. Returns the field
    and the report. A field holding another model's output is refused (``FieldTakenError``)."""
    if run_kwargs.pop("overwrite", False):
        raise BadInputError("fill_missing never re-predicts: use run_inference(..., overwrite=True)")
    dataset = dataset_of(view)
    field_name = field_name or propose_field(dataset, engine)
    check_field_for(dataset, field_name, engine)
    todo = missing_sample_ids(view, field_name, engine.run_key)
    report = run_inference(dataset.select(todo, ordered=True), engine, field_name, progress, **run_kwargs)
    report.skipped += len(view) - len(todo)
    return field_name, report
