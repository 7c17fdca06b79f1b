namespace Gpt2Orleans.Inference.Constraints;

/// <summary>A constraint that cannot be compiled: an unsupported or contradictory schema keyword, a bad regex. <see cref="Keyword"/> names the part.</summary>
public sealed class GrammarException(string message, string keyword) : Exception(message)
{
    public string Keyword { get; } = keyword;
}
