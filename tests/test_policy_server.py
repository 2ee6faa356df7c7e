"""MemoryPolicy on a real chroma server: two policies (as two app processes would) share lessons and cases."""

from __future__ import annotations

from test_memory_server import chroma_url  # noqa: F401 - the module-scoped server fixture
from test_policy import LESSONS, scripted_learner

from memrl import MemoryPolicy
from memrl.memory import HashEmbedder, LessonRecord, open_memory


def test_two_policies_share_a_chroma_server(chroma_url):  # noqa: F811
    seed = open_memory(chroma_url, embedder=HashEmbedder(64), namespace="policy")
    seed.experience.add([LessonRecord(id="L0001", text=LESSONS[0])])
    writer = MemoryPolicy.load(
        open_memory(chroma_url, embedder=HashEmbedder(64), namespace="policy"), learner=scripted_learner()
    )
    reader = MemoryPolicy.load(
        open_memory(chroma_url, embedder=HashEmbedder(64), namespace="policy"), refresh_s=0
    )
    assert LESSONS[0] in reader.memory("numbers").text
    writer.record("Percentages: what is 10% of 50?", "5", 1.0)
    writer.record("Percentages: what is 10% of 50?", "6", 0.0)
    result = writer.learn()
    assert result.ops["ADD"] == 1 and result.cases_written == 2
    shot = reader.memory("Percentages: what is 10% of 50?")
    assert "When solving percentages problems, verify the result before answering" in shot.text
    assert len(shot.cases) == 2 and "Worked examples" in shot.text
    assert MemoryPolicy.load(chroma_url, embedder=HashEmbedder(64)).library.texts() == [], "another namespace"
