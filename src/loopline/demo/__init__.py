"""The demo behind ``make demo``: real models, tracked, compared.

``python -m loopline.demo`` trains several scikit-learn classifiers on the breast
cancer dataset bundled with scikit-learn (nothing is downloaded), tracks each as a
run of the experiment ``demo`` and prints a comparison and the commands to look
further. It is written as steps (:mod:`loopline.demo.main`) so later capabilities
(data versioning, registry, pipelines, serving, monitoring) extend it into the full
loop.
"""
