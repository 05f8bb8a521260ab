"""Talks to Heimdall the way the Blender add-on does, from its observable behaviour.

http.client only; GET /plugin_routes with no extra headers; POST new_user as
application/x-www-form-urlencoded; the bundle made by shutil.make_archive (so
it has directory entries such as textures/); a multipart body built by hand
with a bare hex boundary; no Accept header; json.loads on every answer.
Prints one JSON object with what it saw, for the test to check.
"""
import http.client
import json
import os
import shutil
import ssl
import sys
import tempfile
import urllib.parse
import uuid


def request(conn, method, path, body=None, headers=None):
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    return response.status, response.read()


def connect(base_url, cafile):
    url = urllib.parse.urlsplit(base_url)
    if url.scheme == "https":
        context = ssl.create_default_context(cafile=cafile)
        return http.client.HTTPSConnection(url.hostname, url.port or 443, timeout=60, context=context)
    return http.client.HTTPConnection(url.hostname, url.port or 80, timeout=60)


def main():
    # addon_client.py <base url> <fbx> <png> <username> [<CA file for https>]
    base_url, fbx, png, username = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
    cafile = sys.argv[5] if len(sys.argv) > 5 else None
    conn = connect(base_url, cafile)
    seen = {}

    status, body = request(conn, "GET", "/plugin_routes")
    routes = json.loads(body)
    seen["routes_status"] = status
    seen["routes"] = routes

    status, body = request(conn, "POST", routes["new_user"], body="username=" + username,
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
    user = json.loads(body)
    seen["new_user_status"] = status
    secret = user["secret"]
    seen["secret"] = secret

    work = tempfile.mkdtemp()
    try:
        bundle_name = "BlenderAvatar"
        src = os.path.join(work, bundle_name)
        os.makedirs(os.path.join(src, "textures"))
        with open(os.path.join(src, bundle_name + ".fst"), "w") as f:
            f.write("name = " + bundle_name + "\ntype = body+head\nscale = 1\nfilename = model.fbx\ntexdir = textures\n")
        shutil.copy(fbx, os.path.join(src, "model.fbx"))
        shutil.copy(png, os.path.join(src, "textures", "skin.png"))
        archive = shutil.make_archive(os.path.join(work, bundle_name), "zip", root_dir=src)
        with open(archive, "rb") as f:
            zip_bytes = f.read()

        boundary = uuid.uuid4().hex
        parts = []
        for name, value in (("username", user["username"]), ("token", secret)):
            parts.append(("--%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n%s\r\n" % (boundary, name, value)).encode())
        parts.append(("--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"%s.zip\"\r\nContent-Type: application/zip\r\n\r\n" % (boundary, bundle_name)).encode())
        parts.append(zip_bytes)
        parts.append(("\r\n--%s--\r\n" % boundary).encode())
        payload = b"".join(parts)
        status, body = request(conn, "POST", routes["asset_upload"], body=payload,
                               headers={"Content-Type": "multipart/form-data; boundary=" + boundary,
                                        "Content-Length": str(len(payload))})
        added = json.loads(body)
        seen["upload_status"] = status
        seen["added"] = added

        root = [item for item in added if item["Name"] == bundle_name][0]
        status, fst = request(conn, "GET", "/ipfs/%s/%s.fst" % (root["Hash"], bundle_name))
        seen["fst_status"] = status
        seen["fst"] = fst.decode()
        status, texture = request(conn, "GET", "/ipfs/%s/textures/skin.png" % root["Hash"])
        seen["texture_status"] = status
        seen["texture_matches"] = texture == open(png, "rb").read()
        seen["zip_names"] = sorted(__import__("zipfile").ZipFile(archive).namelist())
    finally:
        shutil.rmtree(work)
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
