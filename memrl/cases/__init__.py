"""Case memory's second half: how cases are chosen for a prompt (`CaseRetriever`, similarity or learned
utility) and the utility itself (`QModel`). The stores are in `memrl.memory`."""

from memrl.cases.q import QModel, distribution
from memrl.cases.retriever import CaseRetriever, Selection, SimilarityCases, select_cases

__all__ = ["CaseRetriever", "QModel", "Selection", "SimilarityCases", "distribution", "select_cases"]
