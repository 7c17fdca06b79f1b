using System.Runtime.CompilerServices;
using Gpt2Orleans.Inference.Tokenization;

namespace Gpt2Orleans.Inference.Constraints;

/// <summary>
/// A tokenizer's ordinary tokens (special tokens left out) as a trie of their bytes, flattened into arrays: a token
/// mask walks it once, and a prefix that the grammar refuses prunes every token below it.
/// </summary>
internal sealed class TokenTrie
{
    private static readonly ConditionalWeakTable<Gpt2Tokenizer, TokenTrie> ByTokenizer = new();

    /// <summary>Node i's children are ChildByte/ChildNode[ChildStart[i] .. ChildStart[i + 1]); the tokens whose bytes end there, Tokens[TokenStart[i] .. TokenStart[i + 1]).</summary>
    public int[] ChildStart { get; }
    public byte[] ChildByte { get; }
    public int[] ChildNode { get; }
    public int[] TokenStart { get; }
    public int[] Tokens { get; }
    public int VocabSize { get; }

    private TokenTrie(int[] childStart, byte[] childByte, int[] childNode, int[] tokenStart, int[] tokens, int vocabSize)
    {
        ChildStart = childStart;
        ChildByte = childByte;
        ChildNode = childNode;
        TokenStart = tokenStart;
        Tokens = tokens;
        VocabSize = vocabSize;
    }

    public static TokenTrie For(Gpt2Tokenizer tokenizer) => ByTokenizer.GetValue(tokenizer, t =>
        Build(Enumerable.Range(0, t.VocabSize).Where(id => !t.IsSpecial(id)).Select(id => (id, t.TokenBytes(id))), t.VocabSize));

    private static TokenTrie Build(IEnumerable<(int Id, byte[] Bytes)> tokens, int vocabSize)
    {
        var children = new List<SortedDictionary<byte, int>> { new() };
        var ending = new List<List<int>> { new() };
        foreach (var (id, bytes) in tokens)
        {
            if (bytes.Length == 0) continue;
            int node = 0;
            foreach (byte b in bytes)
            {
                if (!children[node].TryGetValue(b, out int next))
                {
                    next = children.Count;
                    children.Add(new());
                    ending.Add([]);
                    children[node][b] = next;
                }
                node = next;
            }
            ending[node].Add(id);
        }
        int n = children.Count;
        var childStart = new int[n + 1];
        var tokenStart = new int[n + 1];
        for (int i = 0; i < n; i++)
        {
            childStart[i + 1] = childStart[i] + children[i].Count;
            tokenStart[i + 1] = tokenStart[i] + ending[i].Count;
        }
        return new TokenTrie(childStart, children.SelectMany(c => c.Keys).ToArray(), children.SelectMany(c => c.Values).ToArray(),
            tokenStart, ending.SelectMany(e => e).ToArray(), vocabSize);
    }
}
