def test_send_and_deliver(api, approved_template, work):
    tpl = approved_template()
    r = api.post("/v1/messages", {"to": "+14155552671", "template_id": tpl["id"],
                                  "params": {"name": "Ada", "order": "A-1"}})
    assert r.status_code == 202, r.json
    work()
    m = api.get(f"/v1/messages/{r.json['id']}").json
    assert m["status"] == "delivered", m
