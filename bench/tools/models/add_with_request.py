"""The benchmark model (a + b) that asks the host once per message (self.context.request)."""
from pystage import Model


class AddWithRequest(Model):
    def execute(self, msg):
        offset = self.context.request("offset", msg["b"])
        return {"sum": msg["a"] + offset}
