"""Evidence for checklist items: the kind of each artefact and the facts of its behaviour."""

from tools.evidence.facts import Fact, facts_of
from tools.evidence.kinds import EVIDENCE_KINDS, KINDS, LABELS, classify, describe

__all__ = ["EVIDENCE_KINDS", "KINDS", "LABELS", "Fact", "classify", "describe", "facts_of"]
