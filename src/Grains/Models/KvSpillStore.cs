using System.Security.Cryptography;
using System.Text;
using Gpt2Orleans.Inference.KvCache;

namespace Gpt2Orleans.Grains.Models;

/// <summary>
/// Spilled conversations on this silo's local disk: one <see cref="KvSnapshotFile"/> per owner (a session key),
/// named by the key's hash. A file is used once: taking it deletes it, whether or not it is still valid.
/// </summary>
public sealed class KvSpillStore(string directory)
{
    private string PathOf(string owner) =>
        Path.Combine(directory, Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(owner)))[..32] + ".kv");

    public void Spill(string owner, KvSnapshot snapshot, string fingerprint) => KvSnapshotFile.Write(PathOf(owner), snapshot, fingerprint);

    /// <summary>The owner's snapshot when it exists and still matches the model and the tokens; null (and why) otherwise.</summary>
    public KvSnapshot? Take(string owner, string fingerprint, IReadOnlyList<int> tokens, out string? reason)
    {
        string path = PathOf(owner);
        if (!File.Exists(path))
        {
            reason = "nothing spilled";
            return null;
        }
        try { return KvSnapshotFile.TryRead(path, fingerprint, tokens, out reason); }
        finally { Discard(owner); }
    }

    public void Discard(string owner)
    {
        try { File.Delete(PathOf(owner)); }
        catch (IOException) { } // removed meanwhile, or busy: a later Take refuses it anyway
    }
}
