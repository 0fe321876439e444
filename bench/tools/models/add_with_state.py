"""The benchmark model (a + b) that also keeps a running count per key in self.context.state."""
from pystage import Model


class AddWithState(Model):
    def execute(self, msg):
        state = self.context.state
        key = msg["key"]
        n = state.get(key, 0) + 1
        state[key] = n
        return {"sum": msg["a"] + msg["b"], "n": n}
