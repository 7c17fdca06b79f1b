namespace Gpt2Orleans.Grains.Models;

/// <summary>
/// The heads the API serves, named from a checkpoint's <c>architectures</c> (HF's class names): what loading builds,
/// what the catalog lists and which endpoint a model answers.
/// </summary>
public static class ModelHeads
{
    public const string LanguageModel = "lm", SequenceClassification = "sequence-classification", TokenClassification = "token-classification",
        QuestionAnswering = "question-answering", MultipleChoice = "multiple-choice";

    /// <summary>The first architecture that names a head we serve; a language model otherwise (HF's default GPT-2 class).</summary>
    public static string Of(IEnumerable<string> architectures)
    {
        foreach (var architecture in architectures)
            switch (architecture)
            {
                case "GPT2ForSequenceClassification": return SequenceClassification;
                case "GPT2ForTokenClassification": return TokenClassification;
                case "GPT2ForQuestionAnswering": return QuestionAnswering;
                case "GPT2DoubleHeadsModel": return MultipleChoice;
            }
        return LanguageModel;
    }
}
