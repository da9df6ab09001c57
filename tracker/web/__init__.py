"""`trk view`: a local web page over the run store, and its JSON API.

`data.py` and `rundata.py` answer the API's questions by calling the library
(the run index, `views.compare`, `views.info`, `views.lineage`, the scalar
index); `app.py` is the Starlette app; `server.py` serves it with uvicorn;
`assets/` is the page. Nothing here is imported unless `trk view` runs.
"""
