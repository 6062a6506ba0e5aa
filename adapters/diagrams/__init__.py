"""Lifecycle diagrams: Mermaid state diagrams (text) and Graphviz DOT (for SVG/PNG)."""

from adapters.diagrams.render import dot, markdown_page, mermaid, render_with_graphviz

__all__ = ["dot", "markdown_page", "mermaid", "render_with_graphviz"]
