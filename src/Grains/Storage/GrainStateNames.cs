using System.Security.Cryptography;
using System.Text;
using Orleans.Runtime;

namespace Gpt2Orleans.Grains.Storage;

/// <summary>
/// A storage-safe name for one grain state: "stateName/readable_hash". The readable part keeps only letters, digits
/// and '-' of the grain id (others become '_', at most 80); the hash of the whole id keeps ids apart that differ only in the
/// other characters. So no grain id can name a path outside the store, in a folder or a blob container.
/// </summary>
public static class GrainStateNames
{
    public static (string Folder, string Name) Of(string stateName, GrainId grainId)
    {
        string id = grainId.ToString();
        var readable = new string(id.Select(c => char.IsAsciiLetterOrDigit(c) || c is '-' ? c : '_').Take(80).ToArray());
        string hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(id)))[..16];
        string folder = new(stateName.Select(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' ? c : '_').ToArray());
        return (folder, $"{readable}_{hash}");
    }
}
