"""The Tags panel keeps the reviewer's current tag when the same tags are shown again."""

from __future__ import annotations

from maskreview.gui.panels.tags import TagsPanel


def _shown(panel: TagsPanel) -> list[str]:
    return [panel.tag_list.item(i).text() for i in range(panel.tag_list.count())]


def test_showing_the_same_tags_keeps_the_current_tag_and_other_tags_replace_them(qtbot):
    panel = TagsPanel()
    qtbot.addWidget(panel)
    panel.show_tags(["fp", "review"])
    panel.tag_list.setCurrentRow(1)
    removed = []
    panel.remove_requested.connect(removed.append)

    panel.show_tags(("fp", "review"))  # an edit or a browse step that left the tags alone
    panel.remove_button.click()
    assert removed == ["review"]

    panel.show_tags(["fp"], enabled=False)
    assert _shown(panel) == ["fp"] and not panel.isEnabled()
    panel.show_tags(["fp", "new"])
    assert _shown(panel) == ["fp", "new"] and panel.tag_list.currentItem() is None
