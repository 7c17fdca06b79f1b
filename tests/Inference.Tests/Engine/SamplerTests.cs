using Gpt2Orleans.Inference.Engine;
using TorchSharp;

namespace Gpt2Orleans.Inference.Tests.Engine;

/// <summary>The sampler's host-side argmax (greedy rows on the CPU) chooses as libtorch's argmax does, row by row.</summary>
public sealed class SamplerTests
{
    [Fact]
    public void The_host_argmax_equals_libtorchs_on_ties_nans_infinities_signed_zeros_and_ragged_lengths()
    {
        var random = new Random(5);
        float[] specials = [float.NaN, float.PositiveInfinity, float.NegativeInfinity, 0f, -0f, 1f, -1f, float.MaxValue];
        foreach (int length in new[] { 1, 2, 7, 8, 9, 16, 17, 63, 300, 50257 })
            for (int trial = 0; trial < 40; trial++)
            {
                // Few distinct values, so ties are common; some rows seeded with specials at random places.
                var row = Enumerable.Range(0, length).Select(_ => (float)random.Next(-3, 4)).ToArray();
                int seeded = trial % 4 == 0 ? 0 : random.Next(1, 4);
                for (int k = 0; k < seeded; k++) row[random.Next(length)] = specials[random.Next(specials.Length)];
                if (trial == 1) Array.Fill(row, float.NegativeInfinity);
                if (trial == 2) Array.Fill(row, -0f);
                if (trial == 3) { Array.Fill(row, -0f); row[random.Next(length)] = 0f; }
                using var tensor = torch.tensor(row);
                long expected = tensor.argmax().item<long>();
                Assert.True(expected == Sampler.ArgMax(row), $"length {length}, trial {trial}: libtorch {expected}, ours {Sampler.ArgMax(row)}");
            }
    }
}
