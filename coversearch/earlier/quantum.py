"""(d) A small variational quantum layer, simulated exactly as a state vector
in plain torch (no quantum library): 2^n complex amplitudes for n qubits.

After the embedding e (128-D): a linear map to 2^n real numbers, normalised
to unit length, is the initial state (amplitude embedding); each of
``n_layers`` layers applies RY(theta) and RZ(phi) to every qubit and a ring
of CNOTs (qubit i controls i+1); the readout is the Pauli-Z expectation of
every qubit (n numbers in [-1, 1]), projected back to the embedding size by a
linear layer and L2-normalised. Gradients flow through the simulation by
autograd, as a parameter-shift rule would give on hardware.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["QuantumLayer", "apply_single", "apply_cnot", "z_expectations"]


def apply_single(state: torch.Tensor, gate: torch.Tensor, q: int, n: int) -> torch.Tensor:
    """Apply a 2x2 gate to qubit ``q`` (0 = most significant) of (B, 2^n) states."""
    b = state.shape[0]
    s = state.reshape(b, 2 ** q, 2, 2 ** (n - q - 1))
    return torch.einsum("ij,bajc->baic", gate, s).reshape(b, 2 ** n)


def _cnot_perm(c: int, t: int, n: int) -> torch.Tensor:
    idx = torch.arange(2 ** n)
    cbit = (idx >> (n - 1 - c)) & 1
    return torch.where(cbit == 1, idx ^ (1 << (n - 1 - t)), idx)


def apply_cnot(state: torch.Tensor, c: int, t: int, n: int) -> torch.Tensor:
    """CNOT with control ``c`` and target ``t`` on (B, 2^n) states (a permutation)."""
    return state[:, _cnot_perm(c, t, n)]


def z_expectations(state: torch.Tensor, n: int) -> torch.Tensor:
    """<Z_q> of every qubit: (B, 2^n) complex -> (B, n) real."""
    p = state.real ** 2 + state.imag ** 2  # (B, 2^n)
    idx = torch.arange(2 ** n)
    signs = torch.stack([1.0 - 2.0 * ((idx >> (n - 1 - q)) & 1).float() for q in range(n)], dim=1)  # (2^n, n)
    return p @ signs


class QuantumLayer(nn.Module):
    """(B, dim) -> (B, dim) unit rows through an n-qubit variational circuit."""

    def __init__(self, dim: int, *, n_qubits: int = 7, n_layers: int = 2):
        super().__init__()
        if not 1 <= n_qubits <= 10:
            raise ValueError(f"n_qubits must be 1-10 (state vector of 2^n), got {n_qubits}")
        self.n, self.layers = n_qubits, n_layers
        self.encode = nn.Linear(dim, 2 ** n_qubits)
        self.theta = nn.Parameter(torch.rand(n_layers, n_qubits) * 0.2)
        self.phi = nn.Parameter(torch.rand(n_layers, n_qubits) * 0.2)
        self.out = nn.Linear(n_qubits, dim)
        self.register_buffer("perms", torch.stack([_cnot_perm(q, (q + 1) % n_qubits, n_qubits)
                                                   for q in range(n_qubits)]) if n_qubits > 1 else torch.zeros(0, 2, dtype=torch.long))

    def circuit(self, amps: torch.Tensor) -> torch.Tensor:
        """(B, 2^n) real amplitudes (unit rows) -> (B, n) Pauli-Z expectations."""
        n = self.n
        state = amps.to(torch.complex64)
        for layer in range(self.layers):
            for q in range(n):
                th, ph = self.theta[layer, q] / 2, self.phi[layer, q] / 2
                c, s = torch.cos(th), torch.sin(th)
                ry = torch.stack([torch.stack([c, -s]), torch.stack([s, c])]).to(torch.complex64)
                rz = torch.diag(torch.stack([torch.polar(torch.ones(()), -ph), torch.polar(torch.ones(()), ph)]))
                state = apply_single(state, rz @ ry, q, n)
            for q in range(n if n > 1 else 0):
                state = state[:, self.perms[q]]
        return z_expectations(state, n)

    def forward(self, e: torch.Tensor) -> torch.Tensor:
        amps = F.normalize(self.encode(e), dim=1)  # (B, 2^n) amplitude embedding
        return F.normalize(self.out(self.circuit(amps)), dim=1)
