"""Request corpus of the HTTP/1.1 parser, written from RFC 9110/9112 and the reference §4.5.

``valid.py`` and ``invalid.py`` list cases built with the helpers of ``cases.py``; the tests in
``test_http_corpus.py`` feed each one whole, byte by byte and in random splits.
"""
