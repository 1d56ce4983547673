"""``python -m loopline.demo``."""

from loopline.demo.main import main

main()
