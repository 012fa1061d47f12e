"""Compare datasets (`middo diff`) and render one self-contained HTML report per project (`middo report`)."""
