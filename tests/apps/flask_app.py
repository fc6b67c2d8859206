"""A small Flask application for the framework tests."""

from flask import Flask, jsonify, request

app = Flask(__name__)


@app.get("/")
def index():
    return "Hello from Flask"


@app.post("/echo")
def echo():
    return jsonify(length=len(request.get_data()), form=request.form.to_dict(),
                   json=request.get_json(silent=True))


@app.get("/items/<int:item_id>")
def item(item_id):
    return jsonify(id=item_id, q=request.args.get("q"), scheme=request.scheme)


@app.get("/error")
def error():
    raise ValueError("flask-internal-detail")
